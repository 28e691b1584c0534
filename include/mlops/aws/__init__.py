"""Pure builders of AWS request dicts, validated against botocore in tests."""
