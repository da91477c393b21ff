-- Every distinct event_id of bronze is either a silver event or rejected by validation, never both.
with bronze as (select distinct event_id from {{ source('bronze', 'spotify_events') }}),
silver as (select event_id from {{ ref('stg_spotify__events') }}),
rejected as (select event_id from {{ ref('int_events_rejected') }} where rejected_by = 'silver_validation'),
classified as (
    select bronze.event_id,
           case when silver.event_id is not null then 1 else 0 end
           + case when rejected.event_id is not null then 1 else 0 end as homes
    from bronze
    left join silver on bronze.event_id = silver.event_id
    left join rejected on bronze.event_id = rejected.event_id
)
select * from classified where homes <> 1
