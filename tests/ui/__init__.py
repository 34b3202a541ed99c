"""The web dashboard (app/ui/): browser flows in Chromium, security over HTTP, paging."""
