"""HTTPS for phones on the market network: a local certificate authority and a server
certificate for this machine's names, or a real certificate given by the operator."""
