-- One row per warehouse layer: the newest event it holds and how far that was behind the clock
-- when this model was built (the end of the transform). Kafka and the lake are not visible to
-- the warehouse: the dashboard reads them live (_core.freshness) and shows all five together.
with bronze as (

    select * from {{ ref('stg_spotify__event_deliveries') }}

),

silver as (

    select * from {{ ref('stg_spotify__events') }}

),

gold as (

    select * from {{ ref('fct_user_activity') }}

),

layers as (

    select 'warehouse bronze' as layer, 3 as layer_order, max(event_at) as newest_event_at from bronze
    union all
    select 'silver', 4, max(event_at) from silver
    union all
    select 'gold', 5, max(event_at) from gold

),

measured as (

    select
        *,
        {{ to_utc_timestamp(dbt.current_timestamp()) }} as measured_at
    from layers

)

select
    layer,
    layer_order,
    newest_event_at,
    measured_at,
    {{ seconds_between('newest_event_at', 'measured_at') }} as lag_s
from measured
