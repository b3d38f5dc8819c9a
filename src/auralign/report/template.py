"""The HTML page (a jinja2 template). Kept in a module, not a data file, so any install of auralign has it."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="auralign report">
<title>{{ r.title }}</title>
<style>
  :root { --fg: #1d2330; --muted: #5b6473; --line: #d9dee7; --head: #f1f4f9; --accent: #2a5db0; }
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
         color: var(--fg); margin: 0; background: #fff; }
  main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
  h1 { font-size: 26px; margin: 0 0 4px; }
  h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
  h3 { font-size: 15px; margin: 18px 0 6px; }
  .meta { color: var(--muted); margin: 0 0 8px; }
  .meta span + span::before { content: "·"; margin: 0 8px; }
  nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; margin: 6px 0; font-size: 14px; }
  th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; vertical-align: top; }
  th { background: var(--head); text-align: left; font-weight: 600; }
  table.num td:not(:first-child), table.num th:not(:first-child) { text-align: right;
         font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.up { color: #17803d; } td.down { color: #b3261e; }
  tbody tr:nth-child(even) { background: #fafbfd; }
  .note { color: var(--muted); font-size: 13px; margin: 2px 0; }
  figure { margin: 10px 0; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
  figcaption { color: var(--muted); font-size: 13px; }
  table.examples td { min-width: 150px; max-width: 260px; }
  table.examples td.clip { min-width: 230px; }
  table.examples audio { width: 220px; height: 34px; display: block; margin-top: 4px; }
  table.examples ul { margin: 0; padding-left: 18px; }
  .id { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
  pre { background: var(--head); padding: 10px 12px; overflow-x: auto; font-size: 12.5px; }
  details summary { cursor: pointer; color: var(--accent); }
  ul.notes li { margin: 2px 0; }
{# The full preset's styles, only when used: an older results.json renders byte for byte as before. #}
{% if preset or claims or checks or differences %}
  p.preset { margin: 10px 0 0; padding: 8px 12px; background: var(--head);
             border-left: 4px solid var(--accent); }
  table.claims tbody tr { background: #fff; }
  td.estimate { white-space: nowrap; font-variant-numeric: tabular-nums; }
  td.verdict-reproduced { color: #17803d; } td.verdict-contradicted { color: #b3261e; }
  td.verdict-inconclusive, td.verdict-not-tested { color: #6b7280; }
  td.verdict-not-tested { font-style: italic; }
{% endif %}
</style>
</head>
<body>
<main>
<h1>{{ r.title }}</h1>
<p class="meta">{% for item in meta %}<span>{{ item }}</span>{% endfor %}</p>
<nav>{% for anchor, label in sections %}<a href="#{{ anchor }}">{{ label }}</a>{% endfor %}</nav>
{% if preset %}<p class="preset">{{ preset }}</p>
{% endif %}

{% macro render(table, cls="num") %}
<h3>{{ table.title }}</h3>
<div class="scroll"><table class="{{ cls }}">
<thead><tr>{% for h in table.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in table.rows %}<tr>{% for c in row if not c.hidden %}<td
{%- if c.span > 1 %} rowspan="{{ c.span }}"{% endif %}{% if c.tone %} class="{{ c.tone }}"{% endif %}>
{%- if c.bold %}<b>{{ c.text }}</b>{% else %}{{ c.text }}{% endif %}{{ c.rest }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% for note in table.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% endmacro %}

{% if claims or checks %}<section id="claims"><h2>Claims</h2>
{% if claims %}{{ render(claims, "claims") }}{% endif %}
{% if checks %}{{ render(checks, "claims") }}{% endif %}
</section>
{% endif %}
{% if differences %}<section id="differences"><h2>Key differences</h2>{{ render(differences, "") }}</section>
{% endif %}
{% if captioning %}<section id="captioning"><h2>Captioning</h2>{{ render(captioning) }}
{%- if images.captioning %}
<figure><img alt="{{ captioning_alt }}" src="{{ images.captioning }}">
<figcaption>The primary captioning metric per configuration: the mean, and its 95 % confidence interval as
an error bar.</figcaption></figure>{% endif %}</section>{% endif %}

{% if abilities %}<section id="abilities"><h2>General abilities</h2>{{ render(abilities) }}
{% if logprob %}{{ render(logprob) }}
{% endif %}
{% if images.abilities %}<figure><img alt="accuracy change from the base per task" src="{{ images.abilities }}">
<figcaption>Change in accuracy from the base model per task and configuration (percentage points)
{%- if interval_bars %}; error bars: the configuration's 95 % interval less the base's mean (the base's own
uncertainty is not in them){% endif %}.</figcaption>
</figure>{% endif %}</section>{% endif %}

{% if dali %}<section id="dali"><h2>DALI</h2>{{ render(dali) }}
{% if images.dali_metric %}<figure><img alt="{{ dali_metric_alt }}" src="{{ images.dali_metric }}">
<figcaption>The primary captioning metric per method and input (colour: the input): the mean, and its 95 %
confidence interval as an error bar.</figcaption></figure>
{% endif %}
{% if dali_gap %}{{ render(dali_gap) }}{% endif %}
{% if images.dali_pca %}<figure><img alt="PCA of mean audio and image tokens per method" src="{{ images.dali_pca }}">
<figcaption>DALI's Figure 4: each test clip's mean audio token (orange) and mean image token (blue) on the
first two principal axes, one PCA per alignment method.</figcaption></figure>{% endif %}
{% if images.dali_loss %}<figure><img alt="DALI training loss per stage" src="{{ images.dali_loss }}">
<figcaption>Training loss per stage (each panel on its own scale).</figcaption></figure>{% endif %}
</section>{% endif %}

{% if images.loss %}<section id="training"><h2>Training</h2>
<figure><img alt="training loss per configuration" src="{{ images.loss }}">
<figcaption>Training loss per logged step (light) and its moving average (dark); dashed lines mark a new
stage.</figcaption></figure></section>{% endif %}

{% if examples %}<section id="examples"><h2>Example captions</h2>
<div class="scroll"><table class="examples">
<thead><tr><th>Clip</th><th>Ground truth</th>{% for name in prediction_names %}<th>{{ name }}</th>{% endfor %}</tr></thead>
<tbody>{% for ex in examples %}<tr>
<td class="clip"><span class="id">{{ ex.id }}</span>
{% if ex.audio_uri %}<audio controls preload="metadata" src="{{ ex.audio_uri }}"></audio>{% endif %}
{% if ex.audio_note %}<p class="note">{{ ex.audio_note }}</p>{% endif %}</td>
<td>{% if ex.references|length > 1 %}<ul>{% for ref in ex.references %}<li>{{ ref }}</li>{% endfor %}</ul>
{% else %}{{ ex.references[0] if ex.references else "n/a" }}{% endif %}</td>
{% for name in prediction_names %}<td>{{ ex.predictions.get(name, "n/a") }}</td>{% endfor %}
</tr>{% endfor %}</tbody></table></div></section>{% endif %}

<section id="run"><h2>Run</h2>
{% if notes %}<h3>Notes</h3><ul class="notes">{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% if timings %}{{ render(timings, "") }}{% endif %}
{% if environment %}{{ render(environment, "") }}{% endif %}
{% if config %}<h3>Configuration</h3><details open><summary>results.json: config</summary>
<pre>{{ config }}</pre></details>{% endif %}
</section>
<p class="note">Written by <code>auralign report</code> from {{ source }}.</p>
</main>
</body>
</html>
"""
