//! Appliance and CLI configuration: the TOML schema, defaults and validation.
