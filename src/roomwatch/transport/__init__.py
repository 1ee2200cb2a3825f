"""MQTT plumbing both shells share: a paho-mqtt 2 client set up from the configuration."""

from roomwatch.transport.client import MqttLink

__all__ = ["MqttLink"]
