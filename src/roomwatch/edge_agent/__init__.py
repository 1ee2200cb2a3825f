"""The room agent: reads the room, keeps the interlock, reports over MQTT."""
