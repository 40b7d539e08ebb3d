"""SCIM 2.0: the source type of organizations their identity provider pushes to."""
