-- One row per song of the catalog, with its artist.
with songs as (

    select * from {{ ref('stg_reference__songs') }}

),

artists as (

    select * from {{ ref('stg_reference__artists') }}

)

select
    songs.song_id,
    songs.song_name,
    songs.artist_id,
    artists.artist_name,
    songs.album_name,
    songs.genre,
    songs.release_date,
    songs.duration_ms,
    songs.is_new_release,
    songs.skip_bias,
    songs.catalog
from songs
left join artists
    on songs.artist_id = artists.artist_id
   and songs.catalog = artists.catalog
