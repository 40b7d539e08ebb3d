"""TOML configuration and secrets → frozen, validated settings. Knowable without a directory."""
