-- The 18 towns with their latest reported population (Statistics Bureau).

with towns as (

    select * from {{ ref('towns') }}

),

population as (

    select * from {{ ref('stg_tjj__town_population') }}

),

population_ranked as (

    select
        town_code,
        year,
        resident_population,
        registered_population,
        households,
        area_km2,
        row_number() over (partition by town_code order by year desc) as year_rank
    from population

),

latest_population as (

    select * from population_ranked
    where year_rank = 1

),

final as (

    select
        towns.town_code,
        towns.town_name,
        towns.town_name_zh,
        towns.town_kind,
        towns.lat,
        towns.lon,
        latest_population.year as population_year,
        latest_population.resident_population,
        latest_population.registered_population,
        latest_population.households,
        latest_population.area_km2,
        case
            when latest_population.area_km2 > 0
                then latest_population.resident_population / latest_population.area_km2
        end as population_density_per_km2
    from towns
    left join latest_population
        on towns.town_code = latest_population.town_code

)

select * from final
