"""MQTT: events out (CloudEvents through a durable outbox), retained state, commands in.

The only package that imports aiomqtt. Pure modules: ``topics``, ``envelope``, ``outbox`` (SQLite),
``state``, ``commands``; I/O: ``publisher``, ``command_server``. See docs/mqtt.md.
"""
