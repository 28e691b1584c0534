"""The e-commerce OLTP source database: schema, generator and activity simulator."""
