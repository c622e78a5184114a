"""The HTTP face of ``quantdesk.analytics``: thin endpoints over the pure numerical core."""
