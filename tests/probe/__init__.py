"""The probe service: its messages, its answers, and its deadline cases."""
