-- Social and professional rescue teams with the size of their roster (the duty phone stays out).

with teams as (

    select * from {{ ref('stg_yjj__rescue_teams') }}

),

rescuers as (

    select * from {{ ref('stg_yjj__rescuers') }}

),

rosters as (

    select
        team_id,
        count(*) as rescuer_count
    from rescuers
    group by team_id

),

final as (

    select
        teams.team_id,
        teams.name as team_name,
        teams.team_type,
        teams.specialty,
        teams.town_code,
        teams.base_lat,
        teams.base_lon,
        teams.members,
        teams.vehicles,
        coalesce(rosters.rescuer_count, 0) as rescuer_count
    from teams
    left join rosters
        on teams.team_id = rosters.team_id

)

select * from final
