"""Topic vocabularies of the synthetic platform.

Each topic has a slug (what users declare as an interest), a category (coarser: several topics
share one), a vocabulary of words its posts use, and a tag list. The vocabularies barely overlap,
so text models (TF-IDF, embeddings) find real signal; the common words carry none.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMON_WORDS", "GENERIC_TAGS", "TITLE_OPENERS", "TOPICS", "Topic"]


@dataclass(frozen=True, slots=True)
class Topic:
    """slug: interest name; words: most typical first (sampled with Zipf weights); tags likewise."""

    slug: str
    category: str
    words: tuple[str, ...]
    tags: tuple[str, ...]


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _t(slug: str, category: str, words: str, tags: str) -> Topic:
    return Topic(slug, category, _split(words), _split(tags))


_ALL_TOPICS: tuple[Topic, ...] = (
    _t(
        "cooking",
        "Food & Drink",
        "recipe garlic skillet simmer dinner sauce onion spices roast braise pasta curry "
        "broth marinade ginger basil tomato shallot butter stew wok chili seasoning umami "
        "kitchen knife lentils chickpeas risotto noodles dumplings glaze stock herbs",
        "recipe dinner weeknight-meals homecooking onepot spicy vegetarian comfort-food "
        "meal-prep curry pasta",
    ),
    _t(
        "baking",
        "Food & Drink",
        "sourdough starter dough flour oven loaf crumb crust proof knead yeast butter "
        "croissant pastry sugar cake frosting cookies brioche laminated levain hydration "
        "scoring bake batter vanilla cinnamon muffins ganache tart meringue rye",
        "sourdough baking bread cake cookies pastry homemade-bread levain dessert patisserie",
    ),
    _t(
        "coffee",
        "Food & Drink",
        "espresso grinder beans roast pourover latte crema barista extraction brew "
        "portafilter milk steam aeropress chemex origin ethiopian acidity aroma cafe "
        "burr dose tamp ratio filter coldbrew cappuccino cortado kettle single roaster",
        "coffee espresso latte-art pourover homebarista specialty-coffee coldbrew cafe "
        "coffee-beans",
    ),
    _t(
        "running",
        "Sports & Fitness",
        "marathon pace tempo intervals miles kilometers sneakers trail stride cadence "
        "race training mileage hills recovery splits finish longrun shins hydration "
        "gels taper halfmarathon sprint track warmup foam strava podium ultra",
        "running marathon trailrunning runner 5k halfmarathon training race-day pace",
    ),
    _t(
        "football",
        "Sports & Fitness",
        "goal striker midfield keeper penalty league season match transfer defender "
        "tactics pressing offside derby stadium fans referee kickoff winger fixture "
        "corner header equaliser manager squad trophy cup relegation lineup",
        "football soccer matchday premierleague transfer-news tactics goals derby",
    ),
    _t(
        "yoga",
        "Sports & Fitness",
        "pose breath mat flow stretch balance asana vinyasa mindfulness meditation "
        "flexibility hips spine core calm posture inhale exhale namaste studio sequence "
        "savasana handstand mobility alignment practice retreat breathing",
        "yoga meditation mindfulness vinyasa mobility stretching wellness breathwork",
    ),
    _t(
        "cycling",
        "Sports & Fitness",
        "bike saddle gravel climb descent peloton gears chain cadence watts crank "
        "helmet route commute tyres spokes sprint criterium velodrome frame carbon "
        "pedals bikepacking headwind ride climbing",
        "cycling gravel roadbike bikepacking commute bike-maintenance cyclist",
    ),
    _t(
        "gaming",
        "Gaming",
        "console controller boss level quest speedrun multiplayer loot patch raid "
        "shooter rpg indie pixel streamer gameplay dungeon respawn lobby ranked esports "
        "headset frames graphics mod sandbox open-world platformer",
        "gaming videogames indiegames speedrun esports rpg retrogaming pcgaming gameplay",
    ),
    _t(
        "photography",
        "Arts & Design",
        "lens aperture shutter exposure tripod portrait landscape golden hour bokeh "
        "focal mirrorless sensor iso composition raw lightroom film grain darkroom "
        "prime zoom street frame shot editing",
        "photography streetphotography filmphotography portrait landscape goldenhour "
        "camera lightroom",
    ),
    _t(
        "painting",
        "Arts & Design",
        "canvas brush watercolor acrylic oil palette pigment sketch easel gouache "
        "layers texture color wash underpainting portrait still-life studio gallery "
        "strokes blending varnish mural illustration sketchbook",
        "painting watercolor art acrylic sketchbook illustration artist oilpainting",
    ),
    _t(
        "music_production",
        "Music",
        "synth beat mix master vocals plugin daw sampler drums bassline chord melody "
        "track studio compressor reverb eq loop producer tempo groove monitor "
        "headphones modular arrangement remix",
        "musicproduction producer synth beats mixing homestudio ableton electronic-music",
    ),
    _t(
        "jazz",
        "Music",
        "saxophone trumpet improvisation swing bebop quartet standards chords solo "
        "rhythm bass drummer piano club vinyl record blues scale groove ballad "
        "trio horn session",
        "jazz vinyl livemusic saxophone bebop jazzpiano records",
    ),
    _t(
        "hiking",
        "Travel & Outdoors",
        "trail summit ridge backpack boots camp tent elevation switchbacks valley "
        "alpine wilderness peak map compass campsite lake forest waterfall scramble "
        "gear water sunrise basecamp hut",
        "hiking outdoors camping mountains backpacking trail nature alpine",
    ),
    _t(
        "travel",
        "Travel & Outdoors",
        "flight airport passport itinerary hostel hotel city museum beach island "
        "train luggage visa tour street food market sightseeing layover journey "
        "adventure guidebook local ferry backpacker",
        "travel wanderlust citybreak travel-tips solo-travel budget-travel roadtrip vacation",
    ),
    _t(
        "gardening",
        "Home & Garden",
        "seedlings soil compost tomatoes raised beds harvest plants pruning mulch "
        "perennials bulbs watering greenhouse weeds sprouts pollinators roses herbs "
        "allotment shade fertiliser cuttings blooms",
        "gardening garden growyourown plants houseplants compost flowers allotment",
    ),
    _t(
        "home_diy",
        "Home & Garden",
        "drill sanding plywood shelf renovation paint walls tiles workshop saw "
        "woodworking joinery clamp varnish cabinet flooring grout toolbox screws "
        "measure hinge workbench chisel",
        "diy woodworking homeimprovement renovation workshop maker upcycling",
    ),
    _t(
        "programming",
        "Technology",
        "code python rust compiler function bug debugging refactor repository commit "
        "tests api database server deploy typescript library framework runtime memory "
        "algorithm terminal editor opensource linux",
        "programming coding python rustlang opensource webdev devops softwareengineering",
    ),
    _t(
        "ai",
        "Technology",
        "model neural training dataset gpu transformer embeddings inference benchmark "
        "prompt tokens finetuning weights gradient accuracy parameters research paper "
        "attention agents evaluation robotics vision",
        "ai machinelearning deeplearning llm datascience research neuralnetworks",
    ),
    _t(
        "personal_finance",
        "Money",
        "budget savings index funds invest portfolio pension mortgage debt interest "
        "rent expenses income stocks dividends retirement emergency fund inflation "
        "taxes frugal spreadsheet credit",
        "personalfinance investing budgeting savings frugal financial-independence money",
    ),
    _t(
        "parenting",
        "Family",
        "toddler baby bedtime nursery school homework kids naps daycare playground "
        "tantrum siblings diapers stroller bath lunchbox teacher family birthday "
        "routine milestones playdate crayons",
        "parenting momlife dadlife toddlers family kids homeschool",
    ),
    _t(
        "pets",
        "Pets & Animals",
        "dog puppy cat kitten leash walk vet treats fur paws adoption shelter "
        "rescue training bark purr litter grooming collar breed fetch cuddles",
        "dogs cats puppy adoptdontshop petsofinstagram rescue dogtraining",
    ),
    _t(
        "movies",
        "Film & TV",
        "film director cinema trailer screenplay actor actress sequel premiere "
        "blockbuster documentary series episode season finale plot cast "
        "cinematography soundtrack festival review streaming",
        "movies film cinema tvseries filmreview documentary streaming bingewatch",
    ),
    _t(
        "books",
        "Books & Writing",
        "novel chapter author reading library fiction poetry memoir bookshelf "
        "paperback manuscript characters plot prose bookclub fantasy mystery "
        "thriller publishing draft writing editor",
        "books reading bookclub amreading fantasy writing poetry booktok",
    ),
    _t(
        "fashion",
        "Style & Beauty",
        "outfit denim jacket vintage thrift sneakers wardrobe tailoring linen wool "
        "boots streetwear runway designer accessories silhouette fabric coat dress "
        "knitwear capsule",
        "fashion ootd vintage thrifting streetwear style sustainable-fashion",
    ),
    _t(
        "skincare",
        "Style & Beauty",
        "serum moisturiser sunscreen cleanser retinol acne hydration toner spf "
        "niacinamide routine exfoliate glow pores barrier makeup foundation "
        "lipstick concealer brushes",
        "skincare skincareroutine makeup beauty spf selfcare glowingskin",
    ),
    _t(
        "astronomy",
        "Science",
        "telescope galaxy nebula planets moon orbit stars eclipse comet meteor "
        "astrophotography observatory jupiter saturn mars constellation cosmos "
        "spacecraft launch rocket satellite",
        "astronomy space astrophotography nightsky stargazing rocketlaunch nasa",
    ),
    _t(
        "climate",
        "Science",
        "emissions carbon renewable solar wind heatwave drought floods glaciers "
        "warming policy energy batteries electric emissions sustainability recycling "
        "biodiversity ocean wildfire grid",
        "climate climatechange sustainability renewables solar zerowaste environment",
    ),
    _t(
        "history",
        "Science",
        "empire ancient medieval archive dynasty castle manuscript revolution war "
        "museum ruins archaeology pharaoh roman viking treaty monarchy century "
        "artifacts battle chronicle",
        "history ancienthistory archaeology medieval museum historybuff",
    ),
)

# Presets use the first `n_topics`: interleaved so that any prefix spans many categories.
_ORDER = _split(
    "cooking running gaming photography music_production hiking gardening programming "
    "personal_finance parenting pets movies books fashion astronomy football baking travel ai "
    "painting jazz yoga home_diy skincare climate coffee cycling history"
)
TOPICS: tuple[Topic, ...] = tuple(sorted(_ALL_TOPICS, key=lambda t: _ORDER.index(t.slug)))
assert len(TOPICS) == len(_ORDER) == len({t.slug for t in TOPICS})

# Words any post may use; they carry no topic signal (TF-IDF should learn to ignore them).
COMMON_WORDS: tuple[str, ...] = _split(
    "the a and to of in is it this for with on my so just that was about really "
    "today you we our at from new what some more time one how like love all first "
    "best little great still week finally again here there very good got made "
    "trying found thing things people friends post thoughts favorite weekend "
    "morning tonight always never better big lot every way know think make start "
    "started after before into over back now maybe quick share update notes day "
    "days year ever most much small simple easy hard fun nice happy glad excited "
    "honestly actually pretty kind worth anyone someone everyone other another"
)

TITLE_OPENERS: tuple[str, ...] = (
    "How I",
    "Why",
    "Best",
    "Notes on",
    "My",
    "Quick",
    "The",
    "A guide to",
    "Thoughts on",
    "Weekend",
    "Beginner",
    "Ten",
    "On",
    "Field notes:",
    "Lessons from",
)

# Tags outside any topic, added to some posts.
GENERIC_TAGS: tuple[str, ...] = (
    "trending",
    "weekend",
    "tips",
    "community",
    "throwback",
    "howto",
    "mondaymotivation",
    "inspiration",
)
