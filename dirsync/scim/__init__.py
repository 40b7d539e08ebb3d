"""The SCIM 2.0 endpoint: identity providers push users and groups, each request a planned,
guarded, one-transaction run like any sync (``push.py``), served over HTTPS by the daemon."""
