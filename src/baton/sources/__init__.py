"""Built-in inbound source adapters.

Each module holds one ``baton.plugin.Source`` subclass, registered under the
``baton.sources`` entry-point group exactly as a third-party adapter would be:
``alertmanager``, ``generic`` and ``pagerduty-events``. Only the types named in config are
imported, so this package imports none of them itself.
"""
