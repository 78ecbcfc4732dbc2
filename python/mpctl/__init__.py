"""mpctl from Python: what runs inside Python processes that mpctld manages.

mpctl.worker  the warm worker of a warm pool (`python3 -m mpctl.worker`, see proto/PROTOCOL.md, "Warm workers")
"""
