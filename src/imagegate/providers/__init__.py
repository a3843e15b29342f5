"""Image providers: one module per upstream or engine, each an ``ImageProvider`` named by an entry point."""
