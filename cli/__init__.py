"""The `emotion` command line (cli.main): starts the flows and serves the review app."""
