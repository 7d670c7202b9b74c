"""Tools: one capability each (segment, refine_alpha, inpaint, extract_shadow, verify).

Every tool is a :class:`~liwi.tools.base.Tool`: typed JSON-able parameters, a JSON-schema
description for agents, lazy ``setup()`` for heavy weights, and a pure ``__call__``.
"""
