-- Gold must account for every silver play: no play lost or double counted by the aggregation.
with gold as (select coalesce(sum(plays), 0) as n from {{ ref('fct_song_plays_daily') }}),
silver as (select count(*) as n from {{ ref('stg_spotify__events') }} where event_type = 'play')
select gold.n as gold_plays, silver.n as silver_plays
from gold cross join silver
where gold.n <> silver.n
