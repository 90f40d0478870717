"""Thin gRPC servicers: proto in, service call, proto out. No business rules live here."""
