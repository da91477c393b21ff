-- One row per valid, deduplicated listening event, enriched with region and local time.
--
-- Incremental by load batch: a run inserts the silver events whose first delivery came in a batch
-- this table has not seen yet. Silver keeps the first delivery of each event_id across ALL loads,
-- so a duplicate arriving in a later load never reappears here, and a late event (old event_at,
-- new batch) is inserted like any other. delete+insert on event_id makes a re-run a no-op.
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

with events as (

    select * from {{ ref('stg_spotify__events') }}
    {% if is_incremental() %}
    where batch_id not in (select distinct batch_id from {{ this }} where batch_id is not null)
    {% endif %}

),

regions as (

    select * from {{ ref('country_regions') }}

),

enriched as (

    select
        events.event_id,
        events.event_date as date,
        events.event_at,
        events.event_type as action,
        events.user_id,
        events.session_id,
        events.song_id,
        events.song_name,
        events.artist_id,
        events.artist_name,
        events.album_name,
        events.genre,
        events.release_date,
        events.duration_ms,
        events.position_ms,
        events.playlist_id,
        events.device_type,
        events.country_code,
        coalesce(regions.region, 'Other') as region,
        events.city,
        events.timezone,
        {{ utc_to_local('events.event_at', 'events.timezone') }} as local_at,
        events.subscription,
        events.batch_id,
        events.loaded_at,
        -- When this row became visible in gold: what freshness is measured by.
        {{ to_utc_timestamp(dbt.current_timestamp()) }} as transformed_at
    from events
    left join regions on events.country_code = regions.country_code

),

final as (

    select
        *,
        {{ hour_of('local_at') }} as local_hour
    from enriched

)

select * from final
