"""The dashboard's routes: pages under /ui, and under /ui/api/v1 the few API handlers its
scripts call (upload, prediction, a job's live events, a job's dry run), with the session
cookie and a CSRF header in place of a bearer key."""
