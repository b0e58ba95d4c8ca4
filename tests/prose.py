"""Fresh prose for reward tests: texts of real length the project's corpus and fixtures have never held.

Written for these tests (public domain by dedication), each with a hand-written abstract within the
protocol's default word bound, as a person would summarize it. They are what a client might send:
100 to about 1,200 words, one subject each, sentences of ordinary length.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prose:
    name: str
    text: str
    #: a good abstractive summary a person wrote (not extracted from the text).
    abstract: str


LIGHTHOUSE = Prose("lighthouse", """\
For most of the nineteenth century a lighthouse keeper lived by the clock of the lamp. At dusk he climbed \
the spiral stair, trimmed the wick, polished the brass and lit the oil, and through the night he returned \
every few hours to wind the weights that turned the great lens. A light that went dark for even an hour \
could cost a ship and every soul aboard it, so the logbook recorded each visit to the lantern room in a \
careful hand.

The work did not end at dawn. Salt spray clouded the glass, soot gathered on the prisms, and the keeper \
spent his mornings cleaning until the lens shone again. Paint peeled in the wind and had to be scraped and \
renewed. Supplies arrived by boat once a month when the weather allowed, and a stormy season could leave a \
family living on salted fish and hard biscuit for weeks.

Many keepers raised children on rocks no wider than a village green. Wives often kept the light when \
their husbands fell ill, and more than a few took over the post officially after being widowed. Teachers \
sometimes rowed out to give lessons, but many keepers' children learned to read from the same almanacs \
and tide tables their parents used every day.

Electric lamps and automatic timers ended the trade within a single lifetime. By the middle of the \
twentieth century most towers ran themselves, checked now and then by a technician who came and went in \
an afternoon. The houses at their feet were sold, rented to summer visitors, or left to the gulls.
""", "Nineteenth-century lighthouse keepers tended the lamp through every night and cleaned and repaired the "
    "tower by day, often isolated for weeks. Whole families lived at the lights, wives frequently kept them, "
    "and electric automation ended the occupation by the mid twentieth century.")

BEES = Prose("bees", """\
A honey bee colony does not sleep through the winter the way a bear does. When the air outside falls \
below about ten degrees, the workers stop flying and gather into a tight ball around their queen. The \
bees in the middle of this cluster shiver the muscles that normally drive their wings, producing heat \
without moving them, and the centre of the ball can stay close to the warmth of a summer day even when \
frost covers the hive. The bees on the outside form an insulating shell, packed so closely that little \
heat escapes, and over the hours they trade places with those inside so that no single bee grows too cold.

All of that shivering burns fuel. A strong colony may eat twenty kilograms of honey between the first \
frost and the first spring flowers, and the cluster moves slowly across the combs as it empties the cells \
around it. A colony rarely freezes to death in a cold winter; far more often it starves, sometimes with \
full combs only a hand's width away, because the cluster could not break apart long enough to reach them \
during a long cold spell.

Beekeepers therefore judge a hive in autumn chiefly by its weight. Lifting one side of the box tells an \
experienced keeper whether the bees have stored enough, and a light hive is fed thick sugar syrup while \
the days are still warm enough for the bees to take it down and store it. Later in the season, when \
syrup would chill and ferment, some keepers lay a slab of fondant or dry sugar over the frames instead.

Moisture is a second danger. A cluster breathing through a long night releases water vapour, and if it \
condenses on a cold lid it can drip back onto the bees and chill them faster than any frost. Keepers \
leave a small upper opening or add an absorbent board under the roof so that damp air can escape. Mice \
are a third: a warm hive full of wax and honey makes an attractive winter home, and a narrow metal guard \
across the entrance keeps them out while still letting bees through.

Winter bees are also different insects from summer bees. Workers born in late summer have larger fat \
bodies and live for four to six months, while their summer sisters wear themselves out in about six \
weeks of foraging. Those long-lived autumn workers carry the colony through the cold and raise the first \
new brood as the days lengthen, so a colony that goes into winter with too few of them may dwindle away \
in spring even if it never runs short of food.
""", "Honey bees survive winter by clustering around the queen and shivering to make heat, which uses a "
    "lot of stored honey, so colonies usually die of starvation rather than cold. Keepers check hive "
    "weight in autumn and feed syrup or sugar, vent moisture, block mice, and rely on long-lived autumn "
    "workers to carry the colony into spring.")

CANALS = Prose("canals", """\
Before the railways, the cheapest way to move heavy goods inland was on water, and where no river ran \
engineers dug one. The canal age in Britain is usually dated from 1761, when a channel opened to carry \
coal from the Duke of Bridgewater's mines at Worsley to the growing town of Manchester. The price of coal \
in the town is said to have halved within a year, and investors across the country took notice.

A horse walking along a towpath could pull a boat carrying thirty tons, where the same animal could drag \
perhaps two tons in a wagon on the rutted roads of the day. Pottery, stone, grain, timber and iron could \
now travel long distances without breaking or spoiling, and manufacturers who had worked near their raw \
materials could build their works beside the water instead. Josiah Wedgwood backed a canal linking the \
Trent and the Mersey partly because his fine earthenware broke so often on the packhorse trails.

Building a canal was slow and dangerous work done mostly by hand. Gangs of labourers, later called \
navvies after the navigation they dug, cut the channel with picks and shovels and carried the spoil away \
in barrows up planks laid against the banks. The bed had to be made watertight, and the usual method was \
puddling: clay was worked with water into a thick paste and trodden into the floor and sides, sometimes \
by driving cattle back and forth across it. Where the land rose, the engineers built locks, chambers with \
gates at each end in which a boat could be raised or lowered a few feet at a time. A steep hill might need \
a flight of twenty or thirty locks in a row, and each boat that passed drew a lockful of water down from \
the summit, so reservoirs and feeder streams had to be planned as carefully as the route itself. Where \
even locks would not do, the builders tunnelled through the hills or carried the water across valleys on \
aqueducts of stone and later of cast iron.

The tunnels were often built without a towpath to save money. The horse was led over the hill while the \
crew lay on their backs on planks across the boat and pushed it through the dark by walking their feet \
along the tunnel walls, a practice called legging. A long tunnel might take hours to leg through, and \
professional leggers waited at the entrances to be hired by the trip.

Canal companies were private ventures that charged tolls by the ton and the mile, and the best of them \
paid handsome dividends for decades. Speculation ran ahead of sense in the 1790s, however, when so many \
schemes were floated at once that some were never finished and others carried so little traffic that \
their shareholders lost everything. Even the successful canals struggled with water shortages in dry \
summers and ice in hard winters, when trade could stop altogether for weeks.

The railways arrived in the 1830s and 1840s with speed the canals could not match. Many canal companies \
were bought by railway companies, some of which let their waterways decay so that traffic would move to \
the rails. Narrowboats carried coal and bulk cargo well into the twentieth century, but the trade shrank \
year by year, and by the 1960s much of the network was derelict, the locks rotting and the channels \
choked with weeds.

Volunteers rescued it. Beginning in the 1950s, restoration societies cleared rubbish, rebuilt lock gates \
and campaigned for the canals to be kept open for pleasure boating. Today thousands of kilometres are \
navigable again, used by holiday boats, walkers on the towpaths, anglers and people who live aboard \
narrowboats all year, and the old warehouses along the cuts have become flats, offices and museums.
""", "British canals, begun with the Bridgewater Canal of 1761, made moving heavy goods far cheaper than "
    "roads and drew industry to their banks. Navvies dug them by hand, sealed them with puddled clay and "
    "crossed hills with locks, tunnels and aqueducts. Toll-paying companies often profited, though a 1790s "
    "speculative boom ruined many investors. Railways took their trade from the 1830s, the network decayed "
    "into dereliction, and volunteers restored it for leisure boating from the 1950s onward.")

TIDE_POOLS = Prose("tide_pools", """\
Twice a day the sea withdraws from a rocky shore and leaves behind hundreds of small pools, each a world \
that must survive on its own until the water returns. In a few hours of sun a shallow pool can warm by \
ten degrees, and as water evaporates it grows saltier. Rain does the opposite, and a summer storm at low \
tide can leave the surface almost fresh. Anemones close into blobs of jelly, periwinkles seal themselves \
shut behind a hard plate, and small fish called blennies wedge themselves into cracks to wait. Seaweeds \
shade the deeper pools and keep them cool, which is why the richest life is usually found in those that \
are largest and lowest on the shore, where the sea stays away for the shortest time.
""", "Tide pools warm, grow saltier or freshen in rain while the sea is out. Their animals close up or "
    "hide until it returns, and the largest, lowest, shaded pools hold most life.")

GLACIERS = Prose("glaciers", """\
A valley carved by a river and a valley carved by ice look different even to someone who has never \
studied either. A river cuts downward into its bed and leaves a narrow channel, and the slopes above it \
slump and wash down until the valley has the shape of a letter V. A glacier fills the whole valley from \
side to side. It scrapes the walls as well as the floor and slowly widens and deepens the channel into a \
broad trough with steep sides and a flat bottom, shaped more like a U.

Ice alone is softer than most rock, so the grinding is done by the stones it carries. Boulders and grit \
frozen into the base of a glacier act like the teeth of a rasp, scratching long grooves into the bedrock \
that still point the way the ice moved thousands of years after it melted. Where the rock beneath is \
cracked, meltwater seeps into the joints and freezes again, and the glacier plucks out whole blocks as it \
moves on, leaving a rough, stepped surface on the downstream side of every hump it crossed.

Tributary glaciers that joined the main ice from the side had less weight to cut with, so they deepened \
their own valleys far less. When the ice retreated, those side valleys were left hanging high above the \
main floor, and their streams now tumble down the trough walls as waterfalls. At the head of a glaciated \
valley the ice often hollowed out an armchair-shaped basin called a cirque, and where two cirques were cut \
back to back the ridge between them was sharpened into a narrow knife edge.

Everything the ice tore away had to go somewhere. A glacier carries rock of every size, from fine flour \
to boulders as big as houses, and drops it wherever the ice melts. Long ridges of this unsorted debris, \
called moraines, mark the sides of the old glacier and the farthest point it reached, and a moraine \
across a valley floor often dams a long lake behind it. Single boulders dropped far from the rock they \
came from, known as erratics, puzzled early naturalists, who at first believed a great flood must have \
carried them. It took careful field work in the Alps in the nineteenth century to persuade scientists \
that ice sheets had once covered much of northern Europe and North America.

The same processes are at work today wherever glaciers remain, though most are now retreating. Measuring \
how fast a glacier moves and how much it loses each summer has become one of the clearest ways of \
recording a warming climate, and photographs of the same valley taken a century apart show the ice \
shrinking back toward the peaks, leaving fresh moraines and bare, scratched rock behind.
""", "Glaciers turn narrow V-shaped river valleys into wide U-shaped troughs by grinding with the rocks "
    "frozen into their base and plucking out cracked bedrock. They leave hanging valleys with waterfalls, "
    "cirques and sharp ridges, and dump their debris as moraines and erratic boulders, evidence that "
    "convinced scientists of past ice ages. Today most glaciers are shrinking, a visible record of a "
    "warming climate.")

#: every text, shortest first.
ALL = (TIDE_POOLS, LIGHTHOUSE, BEES, GLACIERS, CANALS)
#: a long client text (about 1,800 words): four of the essays above as one anthology.
ANTHOLOGY = "\n\n".join(p.text for p in (LIGHTHOUSE, BEES, GLACIERS, CANALS))
