"""View models: what each page shows, built from the API handlers' answers (the public
schemas), never from rows, so a page shows no more than the API would."""
