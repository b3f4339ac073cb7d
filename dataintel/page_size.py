"""How many items a connection lists when the client gives neither ``first`` nor ``last``.

Depends on nothing in the project: the resolvers page with it and the gateway's cost
analysis counts with it, so the gateway never imports the services' pagination for it.
"""

DEFAULT_PAGE = 20
"""Items on a page when neither ``first`` nor ``last`` is given."""
