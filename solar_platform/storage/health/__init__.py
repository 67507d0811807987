"""Panel health and the live checks, judged from the stream's window summaries, never raw readings.

- `features`: per-minute summaries of every active panel, read from `panelDataAgg` once per minute
  judged and kept between evaluations;
- `faults`: the rules (pure numpy);
- `alerts`: one evaluation, and `panel_alerts` / `platform_alerts` written as sets;
- `registry`: the panel registry;
- `quality`: the live tables' checks (completeness, power bounds, dead-letter rate);
- `commands`: `solar-platform panels ...` and `health check`.
"""
