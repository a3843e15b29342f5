// "Copy as": the Create form's request as curl, Python google-genai and Python openai code that makes the same
// images. The key is read from $IMAGEGATE_API_KEY (what the imagegate CLI reads too), so a pasted snippet
// never carries it.

const shellQuote = (text) => `'${String(text).replaceAll("'", "'\\''")}'`;
const py = (text) => JSON.stringify(String(text)); // a JSON string is a valid Python string literal

// The names of the files the page holds (as the user picked them), else input-1.png, input-2.png…
function inputNames(count, names = []) {
  return Array.from({ length: count }, (_, i) => names[i] || `input-${i + 1}.png`);
}

// The OpenAI-dialect fields that are not OpenAI's: the seed and the diffusion knobs of local models.
function extras(req) {
  const fields = {};
  if (req.seed !== null && req.seed !== undefined) fields.seed = req.seed;
  if (req.steps !== null && req.steps !== undefined) fields.num_inference_steps = req.steps;
  if (req.guidance !== null && req.guidance !== undefined) fields.guidance_scale = req.guidance;
  if (req.negativePrompt) fields.negative_prompt = req.negativePrompt;
  return fields;
}

export function curlSnippet(req, base) {
  const lines = [`# export IMAGEGATE_API_KEY=ig_…`];
  if (req.inputs) {
    lines.push(
      `curl -s ${base}/v1/images/edits \\`,
      `  -H "Authorization: Bearer $IMAGEGATE_API_KEY" \\`,
      `  -F model=${shellQuote(req.model)} \\`,
      `  --form-string prompt=${shellQuote(req.prompt)} \\`,
      `  -F n=${req.n} \\`,
    );
    if (req.aspectRatio) lines.push(`  -F aspect_ratio=${req.aspectRatio} \\`);
    for (const [name, value] of Object.entries(extras(req))) lines.push(`  --form-string ${name}=${shellQuote(value)} \\`);
    inputNames(req.inputs, req.inputNames).forEach((name) => lines.push(`  -F "image[]=@${name}" \\`));
    lines.push(`  -F response_format=url`);
  } else {
    const body = { model: req.model, prompt: req.prompt, n: req.n, response_format: "url" };
    if (req.aspectRatio) body.aspect_ratio = req.aspectRatio;
    Object.assign(body, extras(req));
    lines.push(
      `curl -s ${base}/v1/images/generations \\`,
      `  -H "Authorization: Bearer $IMAGEGATE_API_KEY" \\`,
      `  -H "Content-Type: application/json" \\`,
      `  -d ${shellQuote(JSON.stringify(body))}`,
    );
  }
  return lines.join("\n");
}

export function genaiSnippet(req, base) {
  const contents = req.inputs
    ? `[\n        ${py(req.prompt)},\n${inputNames(req.inputs, req.inputNames)
        .map((n) => `        types.Part.from_bytes(data=open(${py(n)}, "rb").read(), mime_type="image/png"),`)
        .join("\n")}\n    ]`
    : py(req.prompt);
  const imageConfig = req.aspectRatio
    ? `\n            image_config=types.ImageConfig(aspect_ratio=${py(req.aspectRatio)}),`
    : "";
  // The server gives image i of n the seed + i; one call per image does the same by hand.
  const seed = req.seed !== null && req.seed !== undefined ? `\n            seed=${req.seed} + i,` : "";
  const { seed: _, ...knobs } = extras(req);
  const unsent = Object.keys(knobs).length
    ? "# Gemini has no field for steps, guidance or a negative prompt: the curl and openai snippets send them.\n"
    : "";
  return `${unsent}import os

from google import genai
from google.genai import types

client = genai.Client(
    api_key=os.environ["IMAGEGATE_API_KEY"],
    http_options=types.HttpOptions(base_url=${py(base)}),
)
# generateContent makes one image per call: call it once per image.
for i in range(${req.n}):
    response = client.models.generate_content(
        model=${py(req.model)},
        contents=${contents},
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],${imageConfig}${seed}
        ),
    )
    for part in response.candidates[0].content.parts:
        if part.inline_data:
            with open(f"image-{i + 1}.png", "wb") as f:
                f.write(part.inline_data.data)
`;
}

export function openaiSnippet(req, base) {
  const extra = extras(req);
  const pairs = Object.entries(extra).map(([name, value]) => `${py(name)}: ${JSON.stringify(value)}`);
  const extraBody = pairs.length ? `\n    extra_body={${pairs.join(", ")}},` : "";
  const size = (req.size ? `\n    size=${py(req.size)},` : "") + extraBody;
  const call = req.inputs
    ? `client.images.edit(
    model=${py(req.model)},
    image=[${inputNames(req.inputs, req.inputNames)
      .map((n) => `open(${py(n)}, "rb")`)
      .join(", ")}],
    prompt=${py(req.prompt)},
    n=${req.n},${size}
    response_format="b64_json",
)`
    : `client.images.generate(
    model=${py(req.model)},
    prompt=${py(req.prompt)},
    n=${req.n},${size}
    response_format="b64_json",
)`;
  return `import base64
import os

from openai import OpenAI

client = OpenAI(api_key=os.environ["IMAGEGATE_API_KEY"], base_url=${py(`${base}/v1`)})
result = ${call}
for i, image in enumerate(result.data, start=1):
    with open(f"image-{i}.png", "wb") as f:
        f.write(base64.b64decode(image.b64_json))
`;
}

export const SNIPPETS = {
  curl: { title: "curl", make: curlSnippet },
  genai: { title: "Python · google-genai", make: genaiSnippet },
  openai: { title: "Python · openai", make: openaiSnippet },
};
