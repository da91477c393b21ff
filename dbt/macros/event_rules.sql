{#-
  The silver validation rules, in one place: the first rule an event breaks is its
  rejection reason; null means valid. Columns are those of stg_spotify__event_deliveries
  with loaded_at (see int_event_deliveries__ranked_validated).
  (The drain already quarantines records that break the contract itself: see
  stg_spotify__quarantined_records.)
-#}
{% macro event_rejection_reason() -%}
  case
    when event_id is null or event_at is null or user_id is null or session_id is null
      or song_id is null or event_type is null
      then 'missing_required_field'
    when event_type not in ({% for t in var('event_types') %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
      then 'unknown_event_type'
    when event_at > {{ add_minutes('loaded_at', var('max_clock_skew_minutes')) }}
      then 'future_event_ts'
    when duration_ms is null or duration_ms < {{ var('min_duration_ms') }} or duration_ms > {{ var('max_duration_ms') }}
      then 'duration_out_of_range'
    when position_ms is null or position_ms < 0 or position_ms > duration_ms
      then 'position_out_of_range'
    when subscription not in ('free', 'premium')
      then 'unknown_subscription'
  end
{%- endmacro %}

{#- "Now" for the as-of KPIs: var('as_of') if set, else the latest time in `relation.column`. -#}
{% macro as_of_timestamp(relation, column) -%}
  {%- if var('as_of') -%}
    {{ timestamp_literal(var('as_of')) }}
  {%- else -%}
    (select max({{ column }}) from {{ relation }})
  {%- endif -%}
{%- endmacro %}

{#- A filter on the simulator catalog when var('reference_catalog') is set. -#}
{% macro reference_catalog_filter() -%}
  {%- if var('reference_catalog') -%}
    where catalog = '{{ var("reference_catalog") }}'
  {%- endif -%}
{%- endmacro %}
