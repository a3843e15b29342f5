// The input-image tray of a form: drop, paste or pick images up to the model's limit, show them, remove them.

import { h, clear, toast } from "./ui.js";

const ACCEPTED = ["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"];
// Refused here, before it is read and base64-encoded: the server would refuse a larger upload anyway.
export const MAX_INPUT_BYTES = 20 * 1024 * 1024;
let trays = 0;

export class Tray {
  constructor(container, { dropTarget, limit, label = "Input images" }) {
    this.items = [];
    this.limit = limit;
    this.container = container;
    const id = `tray-file-${++trays}`;
    this.input = h("input", {
      id,
      type: "file",
      accept: ACCEPTED.join(","),
      multiple: true,
      class: "visually-hidden",
      onchange: () => {
        this.addFiles([...this.input.files]);
        this.input.value = "";
      },
    });
    this.list = h("ul", { class: "tray-list", "aria-label": label });
    this.hint = h("span", { class: "hint" });
    this.pick = h("label", { for: id, class: "button ghost small tray-pick" }, "Add image");
    clear(container, h("div", { class: "tray" }, this.list, this.pick, this.input, this.hint));
    container.classList.add("tray-field");
    dropTarget.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault();
      dropTarget.classList.add("dragging");
    });
    dropTarget.addEventListener("dragleave", (event) => {
      if (!dropTarget.contains(event.relatedTarget)) dropTarget.classList.remove("dragging");
    });
    dropTarget.addEventListener("drop", (event) => {
      dropTarget.classList.remove("dragging");
      if (!event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.addFiles([...event.dataTransfer.files]);
    });
    dropTarget.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (!files.length) return;
      event.preventDefault();
      this.addFiles(files);
    });
    this.render();
  }

  setLimit(limit) {
    this.limit = limit;
    if (this.items.length > limit) {
      this.items.splice(limit).forEach((item) => URL.revokeObjectURL(item.url));
      toast(`This model takes at most ${limit} input images; the extra ones were removed.`);
    }
    this.render();
  }

  addFiles(files) {
    for (const file of files) {
      if (!ACCEPTED.includes(file.type)) {
        toast(`${file.name || "That file"} is not a PNG, JPEG or WebP image.`);
        continue;
      }
      if (file.size > MAX_INPUT_BYTES) {
        toast(`${file.name || "That file"} is ${Math.round(file.size / 1e6)} MB; input images may be at most 20 MB.`);
        continue;
      }
      this.add(file, file.name);
    }
  }

  add(blob, name = "image") {
    if (this.items.length >= this.limit) {
      toast(`This model takes at most ${this.limit} input image${this.limit === 1 ? "" : "s"}.`);
      return false;
    }
    this.items.push({ blob, name, url: URL.createObjectURL(blob) });
    this.render();
    return true;
  }

  take() {
    const taken = this.items;
    this.items = [];
    this.render();
    return taken;
  }

  remove(index) {
    const [item] = this.items.splice(index, 1);
    URL.revokeObjectURL(item.url);
    this.render();
  }

  render() {
    clear(
      this.list,
      this.items.map((item, index) =>
        h(
          "li",
          { class: "tray-item" },
          h("img", { src: item.url, alt: `Input ${index + 1}: ${item.name}` }),
          h(
            "button",
            {
              type: "button",
              class: "tray-remove",
              "aria-label": `Remove input ${index + 1}`,
              onclick: () => this.remove(index),
            },
            "×",
          ),
        ),
      ),
    );
    const full = this.items.length >= this.limit;
    this.pick.classList.toggle("disabled", full);
    this.input.disabled = full || this.limit === 0;
    this.hint.textContent =
      this.limit === 0
        ? "This model takes no input images."
        : `${this.items.length}/${this.limit} · drop, paste or pick`;
  }
}
