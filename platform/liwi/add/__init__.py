"""ADD — Agent-driven Data Decomposition: an image lake → layer tables.

Rooms, from low to high (no arrow runs upward):

* :mod:`~liwi.add.curator` (the Layered Image Curator) and :mod:`~liwi.add.recombine`
  depend only on ``layers``/``schema``; the agents import the curator.
* :mod:`~liwi.add.base` (batches, statuses, the :class:`~liwi.add.base.Stage` base) and
  :mod:`~liwi.add.reading` (the first stage, with its retry policy) and
  :mod:`~liwi.add.stages` (the five stages, each declaring its name, resources and columns).
* :mod:`~liwi.add.config`, :mod:`~liwi.add.inputs` (streamed listing, resumption),
  :mod:`~liwi.add.ray_adapter` (the listing task; any stage → a Ray Data actor pool),
  :mod:`~liwi.add.report` and :mod:`~liwi.add.driver` (``run(DecomposeConfig)``).

This package imports nothing on import, so importing the curator stays light.
"""
