"""``kubectl scim``: a kubectl plugin to see and steer scim-kube workspaces.

Pure decisions and formatting live in small modules (``table``, ``status``, ``access``,
``preview``); ``cluster`` talks to the API server; ``cli`` parses the command line."""
