"""The fetch engine both halves use: requests and redirects, one retry policy with typed
errors, resume records, segment scheduling and hashing on the way in."""
