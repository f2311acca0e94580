"""The built-in rules as objects: each carries its documentation and its check, and
packs are compositions of them (:mod:`moorage.policy.rule`).

:mod:`.runtime` holds the ``baseline`` and ``restricted`` packs' runtime rules,
:mod:`.operations` the packs' operation allow-list, :mod:`.configured` the rules a
policy document configures (resources, quotas, images, network, placement).
"""
