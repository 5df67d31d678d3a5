package capacity

// MinZoneSlots is the least number of slots a zone keeps in ZoneSlots,
// however many zones share the report's MaxSlots.
const MinZoneSlots = 16

// compressZones compresses each zone's slots, the zones sharing MaxSlots
// (each keeping at least MinZoneSlots), so that a report of many zones
// stays about the size of one of a single zone. Zones left with no slot are
// dropped: FitsIn finds no room in them.
func compressZones(zs map[string][]Slot) map[string][]Slot {
	per := max(MaxSlots/max(len(zs), 1), MinZoneSlots)
	out := make(map[string][]Slot, len(zs))
	for z, ss := range zs {
		if c := Compress(ss, per); len(c) > 0 {
			out[z] = c
		}
	}
	return out
}
