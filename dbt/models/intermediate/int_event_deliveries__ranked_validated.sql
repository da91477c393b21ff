-- Every delivery of every event with the load that brought it, its rank among the deliveries of
-- its event_id (1 = the first, by load order) and its silver rejection reason.
with deliveries as (

    select * from {{ ref('stg_spotify__event_deliveries') }}

),

loads as (

    select * from {{ ref('stg_spotify__loads') }}

),

with_loads as (

    select
        deliveries.*,
        loads.loaded_at
    from deliveries
    left join loads on deliveries.batch_id = loads.batch_id

),

ranked as (

    -- Kafka is at-least-once upstream: the first delivery (by load, then Kafka position) wins.
    select
        *,
        row_number() over (
            partition by event_id
            order by loaded_at, kafka_topic, kafka_partition, kafka_offset
        ) as delivery_number
    from with_loads

),

validated as (

    select
        *,
        {{ event_rejection_reason() }} as rejection_reason
    from ranked

)

select * from validated
