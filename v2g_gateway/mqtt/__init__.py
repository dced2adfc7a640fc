"""MQTT: retained state, events, commands and Home Assistant discovery over one broker link."""
