-- The seed README's sample query (analyses/top_songs_last_7_days.sql) runs as written against
-- gold.fct_user_activity and returns min(10, songs played in the window) rows, in order.
{{ config(tags=['seed_query']) }}
with seed_query as (
    SELECT song_name, artist_name, COUNT(*) as total_plays, AVG(CASE WHEN action = 'skip' THEN 1 ELSE 0 END) as skip_rate
    FROM {{ ref('fct_user_activity') }} WHERE date >= CURRENT_DATE - 7 GROUP BY song_name, artist_name ORDER BY total_plays DESC LIMIT 10
),
window_songs as (
    select count(*) as n from (
        select distinct song_name, artist_name from {{ ref('fct_user_activity') }} where date >= CURRENT_DATE - 7
    ) d
),
got as (select count(*) as n, min(total_plays) as least_plays from seed_query),
best_outside as (
    -- no song left out of the sample may have more plays than the sample's last row
    select max(n) as n from (
        select song_name, artist_name, count(*) as n from {{ ref('fct_user_activity') }}
        where date >= CURRENT_DATE - 7 group by song_name, artist_name
    ) g
    where not exists (select 1 from seed_query s where s.song_name = g.song_name and s.artist_name = g.artist_name)
)
select got.n as rows_returned, window_songs.n as songs_in_window
from got cross join window_songs cross join best_outside
where got.n <> (case when window_songs.n < 10 then window_songs.n else 10 end)
   or (best_outside.n is not null and best_outside.n > got.least_plays)
