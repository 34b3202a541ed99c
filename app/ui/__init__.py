"""The web dashboard, served by the API process at /ui (`/` redirects there).

Server-rendered Jinja2 pages and small scripts, every asset inside the package (no CDN, no
build step). Sign-in with an API key: a session row in the registry, named by a signed cookie
(session.py, auth.py, repository.py); every page reads through the API's own handlers and
services, so a project sees exactly what its key sees on /v1 (routes/).
"""
