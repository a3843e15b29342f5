"""The HTTP surface: the app factory, authentication, error rendering and middleware."""
