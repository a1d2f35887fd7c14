"""MCP both ways, with the official ``mcp`` SDK (imported only by the code that needs it).

``_command``: the ``shipmates mcp serve`` subcommand (cheap to import); ``_serve``: the crew, or
one captain, as an MCP server over stdio or streamable HTTP; ``_servers``: MCP servers declared
in the user config or by packages; ``_client_sibling``: one such server as a sibling.
"""
