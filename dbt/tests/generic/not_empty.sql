{#- Fails when the model has no rows (with a `where` config: no rows matching it). -#}
{% test not_empty(model) %}
select 1 as empty_model
from (select count(*) as n from {{ model }}) counted
where n = 0
{% endtest %}
