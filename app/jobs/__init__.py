"""Fine-tuning jobs: creating, listing, cancelling, and their event log."""
