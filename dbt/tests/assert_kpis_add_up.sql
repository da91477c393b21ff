-- The KPI tables partition the same plays: daily, per song, per artist, per genre, per country,
-- per local hour and per device/region totals all equal the plays of fct_user_activity.
with total as (select count_if(action = 'play') as n from {{ ref('fct_user_activity') }}),
parts as (
    select 'kpi_daily_engagement' as kpi, sum(plays) as n from {{ ref('kpi_daily_engagement') }}
    union all select 'kpi_song_skip_rates', sum(plays) from {{ ref('kpi_song_skip_rates') }}
    union all select 'kpi_artist_popularity', sum(plays) from {{ ref('kpi_artist_popularity') }}
    union all select 'kpi_genre_distribution', sum(plays) from {{ ref('kpi_genre_distribution') }}
    union all select 'kpi_country_activity', sum(plays) from {{ ref('kpi_country_activity') }}
    union all select 'kpi_listening_hours_local', sum(plays) from {{ ref('kpi_listening_hours_local') }}
    union all select 'kpi_device_by_region', sum(plays) from {{ ref('kpi_device_by_region') }}
)
select parts.kpi, parts.n as kpi_plays, total.n as fct_plays
from parts cross join total
where coalesce(parts.n, 0) <> coalesce(total.n, 0)
