"""Offline evaluation: ranking metrics, customer segments, the evaluate step and the backtest."""
