"""The per-room configuration a device runs with: schema, loader, examples, Pi setup files."""

from roomwatch.firmware_config.loader import ConfigError, load_model, parse_model
from roomwatch.firmware_config.mqtt import MqttSettings, TlsSettings, parse_broker_url
from roomwatch.firmware_config.schema import AgentConfig

__all__ = [
    "AgentConfig",
    "ConfigError",
    "MqttSettings",
    "TlsSettings",
    "load_model",
    "parse_broker_url",
    "parse_model",
]
