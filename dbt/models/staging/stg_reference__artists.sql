with source as (

    select * from {{ source('reference', 'artists') }}
    {{ reference_catalog_filter() }}

),

renamed as (

    select
        artist_id,
        artist_name,
        genre,
        catalog
    from source

)

select * from renamed
