"""iotpki: certificate lifecycle manager for IoT devices."""

__version__ = "0.1.0"
