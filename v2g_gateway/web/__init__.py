"""The local web app: status, plan, money and overrides from any phone, served by the daemon.

A second face beside `mqtt`: it reads snapshots and sends changes through the same Policy.
"""
