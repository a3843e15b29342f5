"""The web playground and dashboard: plain HTML, CSS and ES modules under ``static/``, served at ``/`` by
``imagegate.http.web``; nothing to build, nothing to start apart from the server."""
